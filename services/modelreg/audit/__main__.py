from modelreg.audit.main import main

main()
