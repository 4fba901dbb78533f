do for [t=1:2] {
  if (t == 1) {
    if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
      set terminal pngcairo noenhanced size 1100,650 font ",11"
    } else {
      set terminal png noenhanced size 1100,650
    }
    set output "prune.png"
  } else {
    set terminal svg noenhanced size 1100,650 dynamic font ",11"
    set output "prune.svg"
  }
  reset
  set title "fnet-prune: iterative magnitude pruning of dense:1024,relu,dense:1024,relu,dense:10"
  set grid
  set key outside right top vertical box
  set logscale x
  set xrange [70:0.714286]
  set xtics ("50" 50, "25" 25, "10" 10, "5" 5, "2" 2, "1" 1)
  set xlabel "weights kept (%, log scale; sparsity grows to the right)"
  set ylabel "test accuracy"
  set offsets 0, 0, graph 0.05, graph 0.05
  dense = 0.890100
  set arrow 1 from graph 0, first dense to graph 1, first dense nohead dt 2 lw 1.5 lc rgb "black"
  plot "prune.dat" using 2:3 with linespoints pt 6 ps 1.5 lw 2 lc rgb "#d62728" title "right after pruning", "" using 2:4 with linespoints pt 7 ps 1.5 lw 2 lc rgb "#1f77b4" title "after 2 fine-tuning epochs", NaN with lines dt 2 lw 1.5 lc rgb "black" title "dense"
  set output
}
