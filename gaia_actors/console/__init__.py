"""The operator's console: the command line (``cli``, ``commandline``), the REPL (``repl``),
``tail`` and ``watch``, the printer (``render``) and the control client (``client``). It sits on
top of everything else and nothing below imports it."""
