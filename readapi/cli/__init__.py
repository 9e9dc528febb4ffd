"""`python -m readapi users ...` and `python -m readapi tokens ...`: accounts from the shell.

Every command answers an unknown user, permission or token with one line on stderr and exit
code 2; passwords come from a prompt on a terminal or from stdin, never from the arguments
(which other users of the machine can read in the process list).
"""
