from modelreg.promotion.main import main

main()
