# Build of the native CPU backend (build/Release/loom_cpu.node), run by scripts/build-native.mjs.
# BLAS flags come from scripts/detect-blas.mjs (OpenBLAS, preferring its OpenMP build; Accelerate on macOS).
{
  'targets': [
    {
      'target_name': 'loom_cpu',
      'sources': [
        'native/addon.cc',
        'native/addon_nn.cc',
        'native/threads.cc',
        'native/dispatch.cc',
        'native/gemm.cc',
        'native/gemm_bf16.cc',
        'native/copy.cc',
        'native/embedding.cc',
        'native/rope.cc',
        'native/isa_avx512.cc',
        'native/isa_avx2.cc',
        'native/isa_portable.cc',
      ],
      'include_dirs': [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        '<!@(node scripts/detect-blas.mjs include_dirs)',
      ],
      'defines': [
        'NAPI_VERSION=8',
        'NAPI_CPP_EXCEPTIONS',
        'NODE_ADDON_API_CPP_EXCEPTIONS_ALL',
        '<!@(node scripts/detect-blas.mjs defines)',
      ],
      'libraries': ['<!@(node scripts/detect-blas.mjs libraries)'],
      'cflags!': ['-fno-exceptions', '-O2', '-O0'],
      'cflags_cc!': ['-fno-exceptions', '-fno-rtti', '-O2', '-O0'],
      # No -ffast-math: NaN and Inf must behave. No implicit FMA contraction either (results would depend on
      # the ISA level and exact cancellations would leave rounding residue); kernels call vfma() where they want one.
      'cflags_cc': ['-O3', '-std=gnu++17', '-fexceptions', '-fno-math-errno', '-fno-trapping-math',
                    '-ffp-contract=off', '-Wall', '-Wno-unknown-pragmas', '-Wno-psabi'],
      'conditions': [
        ['OS=="linux" or OS=="freebsd"', {
          'cflags_cc': ['-fopenmp'],
          'ldflags': ['-fopenmp', '<!@(node scripts/detect-blas.mjs ldflags)'],
        }],
        ['OS=="mac"', {
          'xcode_settings': {
            'GCC_ENABLE_CPP_EXCEPTIONS': 'YES',
            'CLANG_CXX_LANGUAGE_STANDARD': 'gnu++17',
            'CLANG_CXX_LIBRARY': 'libc++',
            'MACOSX_DEPLOYMENT_TARGET': '11.0',
            'GCC_OPTIMIZATION_LEVEL': '3',
            # Apple clang has no -fopenmp; detect-blas.mjs reports Homebrew's libomp when present.
            'OTHER_CPLUSPLUSFLAGS': ['-fno-math-errno', '-ffp-contract=off',
                                     '<!@(node scripts/detect-blas.mjs openmp_cflags)'],
            'OTHER_LDFLAGS': ['<!@(node scripts/detect-blas.mjs ldflags)',
                              '<!@(node scripts/detect-blas.mjs openmp_ldflags)'],
          },
        }],
      ],
    },
  ],
}
