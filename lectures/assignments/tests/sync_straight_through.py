from otter.test_files import test_case

OK_FORMAT = False

name = "sync_straight_through"
points = None

@test_case(points=1, hidden=False)
def test_sync_straight_through_public(sync_straight_through):
    import grading
    grading.check_part('sync_straight_through', sync_straight_through, hidden=False)

