from starter.http.app import main

main()
