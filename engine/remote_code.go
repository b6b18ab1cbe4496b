package engine

import "context"

// The code interpreter on a server's sandbox.
// TODO(this session): the server's routes; until then a clear error.

func (r *remoteSandbox) runCode(ctx context.Context, req CodeRequest) (*Execution, error) {
	return nil, newError(KindBadRequest, nil, "running code: not served by quicksand serve yet")
}

func (r *remoteSandbox) createCodeContext(ctx context.Context, opts CodeContextOptions) (CodeContext, error) {
	return CodeContext{}, newError(KindBadRequest, nil, "creating a code context: not served by quicksand serve yet")
}

func (r *remoteSandbox) codeContexts(ctx context.Context) ([]CodeContext, error) {
	return nil, newError(KindBadRequest, nil, "listing code contexts: not served by quicksand serve yet")
}

func (r *remoteSandbox) restartCodeContext(ctx context.Context, id string) error {
	return newError(KindBadRequest, nil, "restarting a code context: not served by quicksand serve yet")
}

func (r *remoteSandbox) removeCodeContext(ctx context.Context, id string) error {
	return newError(KindBadRequest, nil, "removing a code context: not served by quicksand serve yet")
}
