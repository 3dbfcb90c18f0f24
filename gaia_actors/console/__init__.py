"""The operator's console: the command line, the REPL, ``tail``, the printer and the control
client. It sits on top of everything else and nothing below imports it."""
