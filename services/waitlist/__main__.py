from services.waitlist.bootstrap import main

main()
