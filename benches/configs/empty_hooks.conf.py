# pre_request and post_request that do nothing: what calling the hooks costs.
def pre_request(worker, req):
    pass


def post_request(worker, req, environ, resp):
    pass
