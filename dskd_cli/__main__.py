from dskd_cli.main import main

main()
