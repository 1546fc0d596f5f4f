from otter.test_files import test_case

OK_FORMAT = False

name = "lookup_vjp"
points = None

@test_case(points=1, hidden=False)
def test_lookup_vjp_public(lookup_vjp):
    import grading
    grading.check_part('lookup_vjp', lookup_vjp, hidden=False)

