#include <stdio.h>

#ifndef GREETING
#define GREETING "Hello"
#endif

int main(void) {
  printf("%s\n", GREETING);
  return 0;
}
