from services.conference.bootstrap import main

main()
