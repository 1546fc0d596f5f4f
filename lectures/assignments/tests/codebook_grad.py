from otter.test_files import test_case

OK_FORMAT = False

name = "codebook_grad"
points = None

@test_case(points=1, hidden=False)
def test_codebook_grad_public(codebook_grad):
    import grading
    grading.check_part('codebook_grad', codebook_grad, hidden=False)

