from recgen.cli import main

main()
