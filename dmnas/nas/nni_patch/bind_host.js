// Preloaded into NNI 3.0's manager by dmnas (node --require, through NODE_OPTIONS): NNI's REST
// server calls listen(port) and so answers on every interface; with DMNAS_BIND_HOST set, a server
// that is given a port alone listens on that address instead. Nothing else of NNI changes.
'use strict';
const net = require('net');
const host = process.env.DMNAS_BIND_HOST;
if (host) {
  const listen = net.Server.prototype.listen;
  net.Server.prototype.listen = function (...args) {
    const portOnly = (typeof args[0] === 'number' || (typeof args[0] === 'string' && /^\d+$/.test(args[0])))
      && (args.length === 1 || typeof args[1] === 'function');
    if (portOnly) {
      args.splice(1, 0, host);
    }
    return listen.apply(this, args);
  };
}
