from modelreg.lineage.main import main

main()
