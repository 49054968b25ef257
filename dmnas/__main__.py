from dmnas.cli import main

raise SystemExit(main())
