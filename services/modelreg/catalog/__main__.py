from modelreg.catalog.main import main

main()
