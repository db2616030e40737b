// Command brokersim writes realistic RocketMQ stores and Kafka log dirs for demos, tests
// and benchmarks of tierd. See `brokersim --help`.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newRootCmd().ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "brokersim:", err)
		os.Exit(exitCode(err))
	}
}
