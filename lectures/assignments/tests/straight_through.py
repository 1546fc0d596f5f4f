from otter.test_files import test_case

OK_FORMAT = False

name = "straight_through"
points = None

@test_case(points=1, hidden=False)
def test_straight_through_public(straight_through):
    import grading
    grading.check_part('straight_through', straight_through, hidden=False)

