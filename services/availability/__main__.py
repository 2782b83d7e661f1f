from services.availability.server import main

main()
