from nhi_invoke.cli.app import main

raise SystemExit(main())
