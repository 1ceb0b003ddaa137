// awq: one binary, one subcommand per file (cmd_*.cpp).
#include <cstdio>
int main() { std::puts("awq: under construction"); return 0; }
