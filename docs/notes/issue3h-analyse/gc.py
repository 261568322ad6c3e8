import sys
srv=[l.split(' ',3) for l in open(sys.argv[1]).read().split('\n') if l]
gc=[(float(a[0]),float(a[2])) for a in srv if a[1]=='gc']
lag=[(float(a[0]),float(a[2])) for a in srv if a[1]=='lag']
wl=[l.split() for l in open(sys.argv[2])]
wgc=[(float(x[1]),float(x[2])) for x in wl if x[0]=='gc']
jobs=sorted((float(b)-float(a),float(a),float(b)) for a,b,j in (x for x in wl if x[0]!='gc'))
n=len(jobs)
def ov(lst,a,b): return sum(d for t,d in lst if t<b and t+d>a)
def frac(sel,l): return sum(1 for x in sel if ov(l,x[1],x[2])>0)/len(sel)
print('p50 %.2f p99 %.2f'%(jobs[n//2][0],jobs[int(n*.99)][0]))
for name,l in [('srv gc',gc),('wrk gc',wgc),('lag',lag)]:
  if l: print('%s: n %d p50 %.2f max %.2f; jobs overlapping: all %.3f slowest1%% %.3f'%(name,len(l),sorted(d for t,d in l)[len(l)//2],max(d for t,d in l),frac(jobs,l),frac(jobs[-n//100:],l)))
for x in jobs[-int(sys.argv[3]) if len(sys.argv)>3 else -30:]:
    print('%.2f srvgc %.2f wgc %.2f lag %.2f'%(x[0],ov(gc,x[1],x[2]),ov(wgc,x[1],x[2]),ov(lag,x[1],x[2])))
ev=lambda name:[float(a[0]) for a in srv if a[1]==name]
for name in ['dealloc','notify.alone','tx.ask']:
    l=[(t,0.0001) for t in ev(name)]
    print(name,len(l),'jobs with one in window: all %.3f slowest1%% %.3f'%(frac(jobs,l),frac(jobs[-n//100:],l)))
