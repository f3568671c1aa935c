from fastnet.cli import console_main

console_main()
