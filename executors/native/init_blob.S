/* boxcar-init's bytes inside the agent (see init_executable.h). BOXCAR_INIT_PATH is the
   static program built from init_main.cc, passed by CMake. */
  .section .rodata
  .balign 16
  .globl boxcar_init_start
  .type boxcar_init_start, @object
boxcar_init_start:
  .incbin BOXCAR_INIT_PATH
  .globl boxcar_init_end
boxcar_init_end:
  .section .note.GNU-stack,"",@progbits
