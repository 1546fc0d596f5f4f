from otter.test_files import test_case

OK_FORMAT = False

name = "fsq_quantize"
points = None

@test_case(points=1, hidden=False)
def test_fsq_quantize_public(fsq_quantize):
    import grading
    grading.check_part('fsq_quantize', fsq_quantize, hidden=False)

