from otter.test_files import test_case

OK_FORMAT = False

name = "fsq_bound"
points = None

@test_case(points=1, hidden=False)
def test_fsq_bound_public(fsq_bound):
    import grading
    grading.check_part('fsq_bound', fsq_bound, hidden=False)

