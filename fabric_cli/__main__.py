from fabric_cli.entry import main

main()
