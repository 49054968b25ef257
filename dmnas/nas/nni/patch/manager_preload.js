// Preloaded into NNI 3.0's manager by dmnas (node --require, through NODE_OPTIONS). NNI 3.0 is
// frozen, so three of its behaviours are corrected here, each switched on by an environment
// variable dmnas sets and nothing else of NNI changes:
//
// 1. DMNAS_BIND_HOST: NNI's REST server calls listen(port) and so answers on every interface; a
//    server given a port alone listens on that address instead.
// 2. Always: NNI starts its tuner process as spawn(python, [args], {shell: true}), which joins the
//    words unquoted, so a Python path with a space (a venv in "my project/") breaks every search.
//    Each word of such a call is quoted for the POSIX shell.
// 3. DMNAS_OWNER_PID: the manager is its own process group (NNI starts it with setpgrp) and would
//    outlive a SIGKILLed `dmnas search`, submitting trials forever. While the owner is gone for one
//    poll, the whole group (manager, tuner, trials) is terminated. And the tuner (`python -m nni`)
//    is started as `python -m dmnas.nas.nni.guard` with this manager's pid, so a manager killed
//    outright does not leave a tuner that answers the next experiment on its port.
'use strict';
const net = require('net');
const childProcess = require('child_process');

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

function shellQuote(word) {
  const s = String(word);
  return /^[A-Za-z0-9_\-+=.,:/@%]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

const spawn = childProcess.spawn;
const guarded = parseInt(process.env.DMNAS_OWNER_PID || '', 10) > 0;
childProcess.spawn = function (file, args, options) {
  if (guarded && Array.isArray(args) && args[0] === '-m' && args[1] === 'nni') {
    args = ['-m', 'dmnas.nas.nni.guard', ...args.slice(2)];
    options = Object.assign({}, options, {
      env: Object.assign({}, (options && options.env) || process.env, { DMNAS_MANAGER_PID: String(process.pid) }),
    });
  }
  if (Array.isArray(args) && options && options.shell && process.platform !== 'win32') {
    // Node would run `${file} ${args.join(' ')}` through the shell: quote every word instead.
    return spawn.call(this, [file, ...args].map(shellQuote).join(' '), [], options);
  }
  return spawn.apply(this, arguments);
};

const owner = parseInt(process.env.DMNAS_OWNER_PID || '', 10);
if (owner > 0) {
  const timer = setInterval(() => {
    try {
      process.kill(owner, 0);
      return;
    } catch (err) {
      if (err.code === 'EPERM') {
        return; // alive, owned by someone else (cannot happen for our own parent, but be safe)
      }
    }
    clearInterval(timer);
    process.stderr.write(`dmnas: owner process ${owner} is gone; stopping this NNI manager\n`);
    try {
      process.kill(-process.pid, 'SIGTERM'); // the group NNI made: manager, tuner and trials
    } catch (err) {
      // not a group leader (started another way): stop at least this process
    }
    setTimeout(() => {
      try { process.kill(-process.pid, 'SIGKILL'); } catch (err) { /* already gone */ }
      process.exit(1);
    }, 3000).unref();
  }, 1000);
  timer.unref();
}
