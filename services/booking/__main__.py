from services.booking.server import main

main()
