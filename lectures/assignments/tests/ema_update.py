from otter.test_files import test_case

OK_FORMAT = False

name = "ema_update"
points = None

@test_case(points=1, hidden=False)
def test_ema_update_public(ema_update):
    import grading
    grading.check_part('ema_update', ema_update, hidden=False)

