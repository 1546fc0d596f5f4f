from otter.test_files import test_case

OK_FORMAT = False

name = "straight_through_output"
points = None

@test_case(points=1, hidden=False)
def test_straight_through_output_public(straight_through_output):
    import grading
    grading.check_part('straight_through_output', straight_through_output, hidden=False)

