from fraudkeras.cli import main

raise SystemExit(main())
