/* boxcar-keeper's bytes inside the agent (see keeper.h). BOXCAR_KEEPER_PATH is the static
   program built from keeper_main.cc, passed by CMake. */
  .section .rodata
  .balign 16
  .globl boxcar_keeper_start
  .type boxcar_keeper_start, @object
boxcar_keeper_start:
  .incbin BOXCAR_KEEPER_PATH
  .globl boxcar_keeper_end
boxcar_keeper_end:
  .section .note.GNU-stack,"",@progbits
