//go:build tools

// Package main pins the tools the repository runs with `go run`, so that
// go.mod records their versions:
//
//	go run github.com/99designs/gqlgen generate
package main

import (
	_ "github.com/99designs/gqlgen"
)
