from dskd_cli.app import main

main()
