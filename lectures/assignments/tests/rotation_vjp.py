from otter.test_files import test_case

OK_FORMAT = False

name = "rotation_vjp"
points = None

@test_case(points=1, hidden=False)
def test_rotation_vjp_public(rotation_vjp):
    import grading
    grading.check_part('rotation_vjp', rotation_vjp, hidden=False)

