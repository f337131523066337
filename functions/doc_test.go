// Package functions_test checks the function definitions (functions/<Name>/function.json),
// host.json and local.settings.json.example against the contract and the
// rules the Functions host applies when it discovers them.
package functions_test
