"""The command line: parse, call one plain function, render. Nothing else happens here."""
