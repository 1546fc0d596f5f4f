from otter.test_files import test_case

OK_FORMAT = False

name = "expected_identity_coarse_grad"
points = None

@test_case(points=1, hidden=False)
def test_expected_identity_coarse_grad_public(expected_identity_coarse_grad):
    import grading
    grading.check_part('expected_identity_coarse_grad', expected_identity_coarse_grad, hidden=False)

