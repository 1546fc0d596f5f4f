from otter.test_files import test_case

OK_FORMAT = False

name = "binary_step"
points = None

@test_case(points=1, hidden=False)
def test_binary_step_public(binary_step):
    import grading
    grading.check_part('binary_step', binary_step, hidden=False)

