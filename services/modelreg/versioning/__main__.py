from modelreg.versioning.main import main

main()
