from otter.test_files import test_case

OK_FORMAT = False

name = "cluster_stats"
points = None

@test_case(points=1, hidden=False)
def test_cluster_stats_public(cluster_stats):
    import grading
    grading.check_part('cluster_stats', cluster_stats, hidden=False)

