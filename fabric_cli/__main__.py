from fabric_cli.cli import main

main()
