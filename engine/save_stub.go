package engine

import "context"

// startFromSave resumes a saved sandbox (see save.go).
func startFromSave(ctx context.Context, plan launchPlan) (*Sandbox, error) {
	return nil, newError(KindBootFailed, nil, "resuming saves is not built yet")
}
