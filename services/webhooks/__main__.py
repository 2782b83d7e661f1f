from services.webhooks.server import main

main()
