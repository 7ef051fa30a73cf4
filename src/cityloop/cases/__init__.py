"""Cases (案卷): the closed 数字城管 loop from report to close, with its branches and deadlines."""
