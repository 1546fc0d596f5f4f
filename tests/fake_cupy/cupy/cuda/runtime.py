"""cupy.cuda.runtime of the test double: a machine with exactly one GPU."""


def getDeviceCount():
    return 1


def deviceSynchronize():
    pass


def runtimeGetVersion():
    return 13000
