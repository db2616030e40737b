// Package deploy holds no code: it is where the deployment files live (compose/tierd.yaml,
// used by docker-compose.yml and the Dockerfile at the repository root), and its test
// checks that those files agree with each other and with the repository. No Docker
// engine is needed to run it.
package deploy
