from otter.test_files import test_case

OK_FORMAT = False

name = "rotation_trick"
points = None

@test_case(points=1, hidden=False)
def test_rotation_trick_public(rotation_trick):
    import grading
    grading.check_part('rotation_trick', rotation_trick, hidden=False)

