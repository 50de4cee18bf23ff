from modelreg.gateway.main import main

main()
